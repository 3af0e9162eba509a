package slogx

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRateLimitHoldsRepeatedWarnings(t *testing.T) {
	var b bytes.Buffer
	h := RateLimit(slog.NewTextHandler(&b, nil), time.Minute).(*rateLimit)
	now := time.Unix(1000, 0)
	h.st.now = func() time.Time { return now }
	l := slog.New(h).With("component", "tessera")
	for i := 0; i < 1000; i++ {
		l.Warn("failed to write tile", "path", fmt.Sprintf("/d/tile/%d", i), "correlation_id", fmt.Sprint(i))
	}
	l.Info("request")
	l.Info("request")
	if n := strings.Count(b.String(), "failed to write tile"); n != 1 {
		t.Fatalf("%d lines for 1000 identical warnings in one interval, want 1", n)
	}
	if n := strings.Count(b.String(), "msg=request"); n != 2 {
		t.Errorf("%d info lines, want 2 (info is not limited)", n)
	}
	now = now.Add(2 * time.Minute)
	l.Warn("failed to write tile", "path", "/d/tile/x")
	if !strings.Contains(b.String(), "suppressed=999") {
		t.Errorf("the line after the interval does not count the 999 held back:\n%s", b.String())
	}
	l.Warn("witness not cosigning", "witness", "w2", "error", "refused")
	l.Warn("witness not cosigning", "witness", "w3", "error", "timeout")
	l.Warn("witness not cosigning", "witness", "w3", "error", "refused")
	if n := strings.Count(b.String(), "witness not cosigning"); n != 2 {
		t.Errorf("%d lines about two witnesses, want 2 (one each; the error text does not tell them apart)", n)
	}
	slog.New(h).Warn("failed to write tile")
	if n := strings.Count(b.String(), "failed to write tile"); n != 3 {
		t.Errorf("%d lines, want 3 (another component's warning is its own key)", n)
	}
}

func TestFoldMultiLine(t *testing.T) {
	var b bytes.Buffer
	l := slog.New(Fold(slog.NewTextHandler(&b, nil)))
	l.Error("witness failed:\n  dev: 503\n  other: refused\n", "err", "a\nb")
	out := b.String()
	if n := strings.Count(out, "\n"); n != 1 {
		t.Fatalf("%d lines for one multi-line record, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, `msg="witness failed: | dev: 503 | other: refused"`) {
		t.Errorf("message not folded as expected:\n%s", out)
	}
	if !strings.Contains(out, `err="a | b"`) {
		t.Errorf("attribute not folded:\n%s", out)
	}
}

func TestRateLimitFromInfo(t *testing.T) {
	var b bytes.Buffer
	l := slog.New(RateLimitFrom(slog.NewTextHandler(&b, nil), time.Minute, slog.LevelDebug))
	for i := 0; i < 40; i++ {
		l.Info("publishCheckpoint: newCP: witness policy was not satisfied")
	}
	if n := strings.Count(b.String(), "publishCheckpoint"); n != 1 {
		t.Fatalf("%d lines for 40 identical info records, want 1", n)
	}
}

func TestRateLimitExempt(t *testing.T) {
	var b bytes.Buffer
	l := slog.New(RateLimit(slog.NewTextHandler(&b, nil), time.Minute, "request"))
	for i := 0; i < 5; i++ {
		l.Warn("request", "status", 503)
	}
	if n := strings.Count(b.String(), "msg=request"); n != 5 {
		t.Fatalf("%d access lines of 5, want all (exempt)", n)
	}
}
