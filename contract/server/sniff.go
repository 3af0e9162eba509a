package server

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// sniffListener serves TLS and, optionally, plain HTTP on one port: it
// reads the first byte of each connection (in the connection's own
// goroutine, never in Accept) and hands TLS handshakes (0x16) to crypto/tls
// and everything else, when allowed, through as plain HTTP.
type sniffListener struct {
	net.Listener
	cfg   *tls.Config
	plain bool
	conns chan net.Conn
	errc  chan error
	once  sync.Once
	done  chan struct{}
}

func newSniffListener(ln net.Listener, cfg *tls.Config, plain bool) net.Listener {
	l := &sniffListener{Listener: ln, cfg: cfg, plain: plain, conns: make(chan net.Conn), errc: make(chan error, 1), done: make(chan struct{})}
	go l.accept()
	return l
}

func (l *sniffListener) accept() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			select {
			case l.errc <- err:
			case <-l.done:
			}
			return
		}
		go l.sniff(c)
	}
}

func (l *sniffListener) sniff(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	pc := &peekedConn{Conn: c, r: br}
	var out net.Conn
	switch {
	case first[0] == 0x16: // TLS handshake record
		out = tls.Server(pc, l.cfg)
	case l.plain:
		out = pc
	default:
		c.Close()
		return
	}
	select {
	case l.conns <- out:
	case <-l.done:
		c.Close()
	}
}

func (l *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errc:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *sniffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
