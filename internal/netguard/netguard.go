// Package netguard keeps a server's listener alive and its file
// descriptors in budget under connection floods.
//
// A Listener wraps a net.Listener so that
//   - an Accept that fails with a temporary error (EMFILE, ENFILE,
//     ECONNABORTED, ENOBUFS, ENOMEM, a timeout) is retried after a back-off
//     (5ms doubling to 1s, as net/http's Server.Serve does) instead of
//     being returned, so the accept loop never dies on fd exhaustion;
//   - at most MaxConns connections are open at once across every Listener
//     of the process (the fds left over are the reserve that storage and
//     outgoing requests need), and at most MaxConnsPerSource from one
//     remote IP; a connection over either cap is closed at once, with one
//     log line per cap per 10s saying which cap and how many were refused.
package netguard

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"
)

// DefaultReserve is how many file descriptors are kept out of the
// connection cap for storage, witnesses and the process itself.
const DefaultReserve = 128

// Options tune a Listener.
type Options struct {
	// MaxConns caps open connections across every Listener of the process
	// (the first Listener's value wins). Default: the soft RLIMIT_NOFILE
	// minus Reserve, at least 16.
	MaxConns int
	// Reserve is how many fds the default MaxConns leaves free. Default
	// DefaultReserve, or a quarter of the limit when that is smaller.
	Reserve int
	// MaxConnsPerSource caps open connections from one remote IP.
	// Default: half of MaxConns.
	MaxConnsPerSource int
	// Logger receives the rate-limited log lines. Default slog.Default().
	Logger *slog.Logger
	// Budget counts the connections. Default: the process-wide budget.
	Budget *Budget
}

// Budget counts open connections against a cap, in total and per source.
type Budget struct {
	mu       sync.Mutex
	open     int
	max      int
	bySource map[string]int
}

// NewBudget caps open connections at max.
func NewBudget(max int) *Budget { return &Budget{max: max, bySource: map[string]int{}} }

// Open is the number of connections open under b.
func (b *Budget) Open() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open
}

// Max is b's cap.
func (b *Budget) Max() int { return b.max }

// The process-wide budget, created by the first Wrap without one: file
// descriptors are per process.
var (
	raiseOnce     sync.Once
	processMu     sync.Mutex
	processBudget *Budget
)

// Listener is a guarded net.Listener; see the package comment.
type Listener struct {
	net.Listener
	budget    *Budget
	perSource int
	logger    *slog.Logger
	refusals  *Limiter
	sleep     func(time.Duration)
}

// Wrap guards ln. The first call raises the soft RLIMIT_NOFILE to the hard
// limit (RaiseFDLimit).
func Wrap(ln net.Listener, o Options) *Listener {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	raiseOnce.Do(func() { RaiseFDLimit() })
	if o.MaxConns <= 0 {
		limit := FDLimit()
		reserve := o.Reserve
		if reserve <= 0 {
			reserve = DefaultReserve
			if limit/4 < reserve {
				reserve = limit / 4
			}
		}
		o.MaxConns = limit - reserve
		if o.MaxConns < 16 {
			o.MaxConns = 16
		}
	}
	b := o.Budget
	if b == nil {
		processMu.Lock()
		if processBudget == nil {
			processBudget = NewBudget(o.MaxConns)
		}
		b = processBudget
		processMu.Unlock()
	}
	if o.MaxConnsPerSource <= 0 {
		o.MaxConnsPerSource = b.max / 2
		if o.MaxConnsPerSource < 1 {
			o.MaxConnsPerSource = 1
		}
	}
	return &Listener{Listener: ln, budget: b, perSource: o.MaxConnsPerSource, logger: o.Logger,
		refusals: NewLimiter(10 * time.Second), sleep: time.Sleep}
}

// Budget is the budget l counts its connections in.
func (l *Listener) Budget() *Budget { return l.budget }

// Temporary reports whether an Accept error is worth retrying.
func Temporary(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED, syscall.ENOBUFS, syscall.ENOMEM, syscall.EAGAIN, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Accept returns the next connection within the caps. Temporary errors are
// retried with back-off; only a permanent error (the listener closed) is
// returned.
func (l *Listener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !Temporary(err) {
				return nil, err
			}
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			if n, ok := l.refusals.Allow("accept"); ok {
				l.logger.Warn("accept failed; retrying", "error", err.Error(), "retry_in", delay.String(), "similar_suppressed", n)
			}
			l.sleep(delay)
			continue
		}
		delay = 0
		src := sourceOf(c.RemoteAddr())
		b := l.budget
		b.mu.Lock()
		switch {
		case b.open >= b.max:
			b.mu.Unlock()
			c.Close()
			if n, ok := l.refusals.Allow("global"); ok {
				l.logger.Warn("connection refused: global connection cap reached", "max_conns", b.max, "source", src, "refused_since_last_line", n+1)
			}
			continue
		case b.bySource[src] >= l.perSource:
			b.mu.Unlock()
			c.Close()
			if n, ok := l.refusals.Allow("source"); ok {
				l.logger.Warn("connection refused: per-source connection cap reached", "max_conns_per_source", l.perSource, "source", src, "refused_since_last_line", n+1)
			}
			continue
		}
		b.open++
		b.bySource[src]++
		b.mu.Unlock()
		return &conn{Conn: c, src: src, budget: b}, nil
	}
}

type conn struct {
	net.Conn
	src    string
	budget *Budget
	once   sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() {
		b := c.budget
		b.mu.Lock()
		b.open--
		if b.bySource[c.src]--; b.bySource[c.src] <= 0 {
			delete(b.bySource, c.src)
		}
		b.mu.Unlock()
	})
	return c.Conn.Close()
}

func sourceOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// Limiter lets one event per key through per interval and counts the rest,
// for log lines that would otherwise repeat in a tight loop.
type Limiter struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
	held  map[string]int
	now   func() time.Time
}

// NewLimiter lets one event per key through every interval.
func NewLimiter(every time.Duration) *Limiter {
	return &Limiter{every: every, last: map[string]time.Time{}, held: map[string]int{}, now: time.Now}
}

// Allow reports whether the event keyed key may be logged now and, when it
// may, how many were held back since the last one let through.
func (r *Limiter) Allow(key string) (suppressed int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if t, seen := r.last[key]; seen && now.Sub(t) < r.every {
		r.held[key]++
		return 0, false
	}
	r.last[key] = now
	n := r.held[key]
	r.held[key] = 0
	return n, true
}

// String describes the caps, for a start-up log line.
func (l *Listener) String() string {
	return fmt.Sprintf("max_conns=%d max_conns_per_source=%d", l.budget.max, l.perSource)
}
