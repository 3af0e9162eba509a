package log

import "errors"

// Outcomes of Append, Await and the read methods. They are returned wrapped
// with detail; test with errors.Is. The decision path maps every one of them
// to a fail-closed answer.
var (
	// ErrPushback: the log has too many entries waiting to be sequenced;
	// retry later (HTTP 503 with Retry-After).
	ErrPushback = errors.New("log: pushback, too many entries waiting")
	// ErrStorage: the storage failed; the entry's fate is unknown and it
	// must be treated as not committed.
	ErrStorage = errors.New("log: storage error")
	// ErrEntryTooLarge: the entry is longer than tlog-tiles allows.
	ErrEntryTooLarge = errors.New("log: entry too large")
	// ErrEmptyEntry: an entry must have at least one byte.
	ErrEmptyEntry = errors.New("log: empty entry")
	// ErrClosed: the log is shutting down or shut down.
	ErrClosed = errors.New("log: closed")
	// ErrNotFound: the index or tree size is beyond the published checkpoint.
	ErrNotFound = errors.New("log: beyond the published tree")
	// ErrNoCheckpoint: no checkpoint has been published yet.
	ErrNoCheckpoint = errors.New("log: no published checkpoint")
	// ErrInconsistent: the published checkpoint went backwards or forked.
	// The log refuses to serve Await until an operator looks.
	ErrInconsistent = errors.New("log: published checkpoints are inconsistent")
	// ErrAbandoned: the caller's context ended before the entry was
	// sequenced; it may still be sequenced later (AppendThen reports when).
	// The error also wraps the context's.
	ErrAbandoned = errors.New("log: append abandoned before it was sequenced")
	// ErrWrongLog: the storage holds a log with another origin or key.
	ErrWrongLog = errors.New("log: storage holds a different log")
	// ErrWitness: the witness policy's quorum did not cosign a checkpoint
	// the log had to publish (a new log's first one at Open).
	ErrWitness = errors.New("log: witness quorum not met")
)
