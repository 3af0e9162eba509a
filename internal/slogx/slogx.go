// Package slogx holds slog handlers the binaries put in front of their
// output: RateLimit, so a fault that repeats (a full disk, a dead witness)
// logs a line per interval instead of flooding stderr, and Fold, so a
// third-party multi-line message stays one structured record.
package slogx

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// RateLimit passes records below slog.LevelWarn through and lets one
// record per message at Warn or above through per interval, a message
// being its text and its "component", "witness", "source" and "field"
// attributes (what a line is about; not its error text, paths or
// correlation ids, which vary from one repetition to the next). Records
// whose message is in exempt (access logs: one line per request) always
// pass; the next one let through carries
// "suppressed": how many were held back.
func RateLimit(h slog.Handler, every time.Duration, exempt ...string) slog.Handler {
	return RateLimitFrom(h, every, slog.LevelWarn, exempt...)
}

// RateLimitFrom is RateLimit for records at min or above (a third party
// that repeats its errors at info level, as Tessera does every 500ms while
// the witnesses are down, gets min = slog.LevelDebug).
func RateLimitFrom(h slog.Handler, every time.Duration, min slog.Level, exempt ...string) slog.Handler {
	st := &rateState{every: every, min: min, exempt: map[string]bool{}, last: map[string]time.Time{}, held: map[string]int{}, now: time.Now}
	for _, m := range exempt {
		st.exempt[m] = true
	}
	return &rateLimit{next: h, st: st}
}

// keyAttrs are the attributes that tell one repeated line from another.
var keyAttrs = map[string]bool{"component": true, "witness": true, "source": true, "field": true}

type rateState struct {
	every  time.Duration
	min    slog.Level
	exempt map[string]bool
	mu     sync.Mutex
	last   map[string]time.Time
	held   map[string]int
	now    func() time.Time
}

type rateLimit struct {
	next   slog.Handler
	st     *rateState
	prefix string // the component this handler was bound to, if any
}

func (h *rateLimit) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *rateLimit) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.st.min || h.st.exempt[r.Message] {
		return h.next.Handle(ctx, r)
	}
	key := h.prefix + "\x00" + r.Message
	r.Attrs(func(a slog.Attr) bool {
		if keyAttrs[a.Key] {
			key += "\x00" + a.Key + "=" + a.Value.String()
		}
		return true
	})
	st := h.st
	st.mu.Lock()
	now := st.now()
	if t, ok := st.last[key]; ok && now.Sub(t) < st.every {
		st.held[key]++
		st.mu.Unlock()
		return nil
	}
	st.last[key] = now
	n := st.held[key]
	st.held[key] = 0
	st.mu.Unlock()
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", n))
	}
	return h.next.Handle(ctx, r)
}

func (h *rateLimit) WithAttrs(as []slog.Attr) slog.Handler {
	p := h.prefix
	for _, a := range as {
		if keyAttrs[a.Key] {
			p += "\x00" + a.Key + "=" + a.Value.String()
		}
	}
	return &rateLimit{next: h.next.WithAttrs(as), st: h.st, prefix: p}
}

func (h *rateLimit) WithGroup(name string) slog.Handler {
	return &rateLimit{next: h.next.WithGroup(name), st: h.st, prefix: h.prefix}
}

// Fold makes each record's message one line: line breaks (and carriage
// returns) become " | ", trailing ones are dropped, and string attributes
// get the same treatment, so a text handler writes one line per record.
func Fold(h slog.Handler) slog.Handler { return fold{h} }

type fold struct{ next slog.Handler }

func (h fold) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h fold) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, FoldLines(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Value.Kind() == slog.KindString {
			a.Value = slog.StringValue(FoldLines(a.Value.String()))
		}
		out.AddAttrs(a)
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h fold) WithAttrs(as []slog.Attr) slog.Handler { return fold{h.next.WithAttrs(as)} }
func (h fold) WithGroup(name string) slog.Handler    { return fold{h.next.WithGroup(name)} }

// FoldLines joins the lines of s with " | ".
func FoldLines(s string) string {
	s = strings.TrimRight(s, "\r\n")
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, " | ")
}
