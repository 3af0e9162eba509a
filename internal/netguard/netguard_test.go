package netguard

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/internal/testutil/devproc"
)

// fakeListener fails Accept with errs in turn, then accepts from the real
// listener.
type fakeListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (f *fakeListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		f.mu.Unlock()
		return nil, err
	}
	f.mu.Unlock()
	return f.Listener.Accept()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func logBuffer() (*slog.Logger, *devproc.SyncBuffer) {
	var b devproc.SyncBuffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

func TestAcceptRetriesTemporaryErrors(t *testing.T) {
	ln := listen(t)
	logger, logs := logBuffer()
	fake := &fakeListener{Listener: ln, errs: []error{
		&net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE},
		&net.OpError{Op: "accept", Net: "tcp", Err: syscall.ENFILE},
		&net.OpError{Op: "accept", Net: "tcp", Err: syscall.ECONNABORTED},
	}}
	g := Wrap(fake, Options{Budget: NewBudget(10), Logger: logger})
	var slept []time.Duration
	g.sleep = func(d time.Duration) { slept = append(slept, d) }
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	c, err := g.Accept()
	if err != nil {
		t.Fatalf("Accept after EMFILE, ENFILE, ECONNABORTED: %v, want a connection", err)
	}
	c.Close()
	if len(slept) != 3 {
		t.Fatalf("backed off %d times, want 3", len(slept))
	}
	if slept[0] != 5*time.Millisecond || slept[2] != 20*time.Millisecond {
		t.Errorf("back-off %v, want 5ms doubling", slept)
	}
	if n := strings.Count(logs.String(), "accept failed; retrying"); n != 1 {
		t.Errorf("%d accept-failure log lines for 3 failures within 10s, want 1 (rate-limited)", n)
	}
}

func TestAcceptReturnsPermanentError(t *testing.T) {
	ln := listen(t)
	g := Wrap(ln, Options{Budget: NewBudget(10)})
	ln.Close()
	if _, err := g.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed listener: %v, want net.ErrClosed", err)
	}
}

// dialAccept dials n connections and returns the ones the guarded listener
// handed out (the others it closed).
func serveCount(t *testing.T, g *Listener) chan net.Conn {
	out := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := g.Accept()
			if err != nil {
				return
			}
			out <- c
		}
	}()
	return out
}

func TestGlobalCapRefusesAndLogsOnce(t *testing.T) {
	ln := listen(t)
	logger, logs := logBuffer()
	b := NewBudget(3)
	g := Wrap(ln, Options{Budget: b, MaxConnsPerSource: 100, Logger: logger})
	accepted := serveCount(t, g)
	var clients []net.Conn
	for i := 0; i < 6; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	var held []net.Conn
	for i := 0; i < 3; i++ {
		select {
		case c := <-accepted:
			held = append(held, c)
		case <-time.After(2 * time.Second):
			t.Fatalf("only %d connections accepted, want 3", i)
		}
	}
	// The three over the cap are closed by the server: the client reads EOF.
	for _, c := range clients[3:] {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("a connection over the cap read %v, want EOF (closed by the server)", err)
		}
	}
	if got := b.Open(); got != 3 {
		t.Errorf("open connections %d, want 3", got)
	}
	if n := strings.Count(logs.String(), "global connection cap reached"); n != 1 {
		t.Errorf("%d cap log lines for 3 refusals, want 1\n%s", n, logs)
	}
	// Closing one frees a slot.
	held[0].Close()
	if got := b.Open(); got != 2 {
		t.Errorf("open connections after one closed: %d, want 2", got)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(2 * time.Second):
		t.Fatal("a connection below the cap again was not accepted")
	}
	for _, c := range append(clients, held...) {
		c.Close()
	}
}

func TestPerSourceCap(t *testing.T) {
	ln := listen(t)
	logger, logs := logBuffer()
	b := NewBudget(100)
	g := Wrap(ln, Options{Budget: b, MaxConnsPerSource: 2, Logger: logger})
	accepted := serveCount(t, g)
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(300 * time.Millisecond)
	if got := len(accepted); got != 2 {
		t.Errorf("accepted %d connections from one source, want 2", got)
	}
	if !strings.Contains(logs.String(), "per-source connection cap reached") {
		t.Errorf("no per-source log line:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "source=127.0.0.1") {
		t.Errorf("the log line does not name the source:\n%s", logs)
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(10 * time.Second)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }
	if _, ok := l.Allow("k"); !ok {
		t.Fatal("first event held back")
	}
	if _, ok := l.Allow("k"); ok {
		t.Fatal("second event within the interval let through")
	}
	if _, ok := l.Allow("other"); !ok {
		t.Fatal("an event of another key held back")
	}
	l.Allow("k")
	now = now.Add(11 * time.Second)
	n, ok := l.Allow("k")
	if !ok {
		t.Fatal("event after the interval held back")
	}
	if n != 2 {
		t.Errorf("suppressed count %d, want 2", n)
	}
}

func startServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln := listen(t)
	srv := Harden(&http.Server{Handler: h})
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestBodyDeadlineCutsSlowBody: a client that declares a body and trickles
// it is cut off (issue 18 finding 3).
func TestBodyDeadlineCutsSlowBody(t *testing.T) {
	readErr := make(chan error, 1)
	ln := listen(t)
	srv := &http.Server{Handler: BodyDeadline(300*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	}))}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\na")
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				c.Write([]byte("a"))
			}
		}
	}()
	select {
	case err := <-readErr:
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("reading a trickled body: %v, want a timeout", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a body trickled at 10 B/s is still being read after 3s with a 300ms body deadline")
	}
}

// TestBodyDeadlineKeepsLongPoll: once the body is read, a handler may take
// longer than the body deadline; its context stays alive.
func TestBodyDeadlineKeepsLongPoll(t *testing.T) {
	addr := func() string {
		ln := listen(t)
		srv := &http.Server{Handler: BodyDeadline(200*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body)
			select {
			case <-time.After(600 * time.Millisecond):
				io.WriteString(w, "done")
			case <-r.Context().Done():
			}
		}))}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return ln.Addr().String()
	}()
	resp, err := http.Post("http://"+addr+"/", "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if string(got) != "done" {
		t.Fatalf("a handler running past the body deadline answered %q, want %q", got, "done")
	}
}

func TestHardenSetsTimeouts(t *testing.T) {
	srv := Harden(&http.Server{})
	if srv.ReadHeaderTimeout != ReadHeaderTimeout {
		t.Errorf("ReadHeaderTimeout %s, want %s", srv.ReadHeaderTimeout, ReadHeaderTimeout)
	}
	if srv.IdleTimeout != IdleTimeout {
		t.Errorf("IdleTimeout %s, want %s", srv.IdleTimeout, IdleTimeout)
	}
	addr := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200", resp.StatusCode)
	}
}

func TestRaiseFDLimit(t *testing.T) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	got, err := RaiseFDLimit()
	if err != nil {
		t.Fatal(err)
	}
	if got != r.Max {
		t.Errorf("soft limit after raising %d, want the hard limit %d", got, r.Max)
	}
}
