package ethrpc

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/zt-infra/ztlog/internal/httperr"
)

// oversizedAnswer is one JSON-RPC answer to eth_chainId of maxResponse+1
// bytes: a single JSON value, so that the IPC reader (one value off the
// stream) and the HTTP reader (the whole body) both meet the limit.
func oversizedAnswer() []byte {
	head, tail := `{"jsonrpc":"2.0","id":1,"result":"0x1","pad":"`, `"}`
	return []byte(head + strings.Repeat("x", maxResponse+1-len(head)-len(tail)) + tail)
}

var contract = common.HexToAddress("0x00000000000000000000000000000000000000aa")

// checkTooLarge asserts that Dial failed with the typed limit error and
// that the message says what to do.
func checkTooLarge(t *testing.T, err error) {
	t.Helper()
	var tl *httperr.TooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("Dial: err = %v, want a *httperr.TooLargeError", err)
	}
	if tl.Limit != maxResponse {
		t.Errorf("TooLargeError.Limit = %d, want %d", tl.Limit, maxResponse)
	}
	if !strings.Contains(err.Error(), "eth_chainId") {
		t.Errorf("error %q does not name the method eth_chainId", err)
	}
	if !strings.Contains(err.Error(), "query fewer blocks") {
		t.Errorf("error %q does not say to query fewer blocks", err)
	}
}

func TestHTTPAnswerOverTheLimit(t *testing.T) {
	body := oversizedAnswer()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	defer srv.Close()
	_, err := Dial(context.Background(), srv.URL, contract)
	checkTooLarge(t, err)
}

func TestIPCAnswerOverTheLimit(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "node.ipc")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	body := oversizedAnswer()
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.Write(body)
	}()
	_, err = Dial(context.Background(), sock, contract)
	checkTooLarge(t, err)
}
