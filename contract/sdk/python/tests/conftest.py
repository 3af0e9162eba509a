import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.dirname(HERE)
REPO = os.path.abspath(os.path.join(SDK, "..", "..", ".."))
sys.path.insert(0, SDK)
