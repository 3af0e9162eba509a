package broker

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The golden journal: one result undone, one done, a torn tail.
func TestReadJournalGolden(t *testing.T) {
	raw, err := os.ReadFile("testdata/courier.journal")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/courier.journal.undone")
	if err != nil {
		t.Fatal(err)
	}
	undone, err := readJournal(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(undone) != 1 {
		t.Fatalf("%d results undone, want 1", len(undone))
	}
	if !bytes.Equal(undone[0], want) {
		t.Fatalf("undone result %q, want %q", undone[0], want)
	}
}

// A record whose body does not have its digest ends the journal: what
// follows was never synced.
func TestReadJournalStopsAtACorruptRecord(t *testing.T) {
	a, b := []byte(`{"a":1}`), []byte(`{"b":2}`)
	var j bytes.Buffer
	j.WriteString("R " + resultSum(a) + " 7\n{\"a\":9}\n")
	j.WriteString("R " + resultSum(b) + " 7\n" + string(b) + "\n")
	undone, err := readJournal(&j)
	if err != nil {
		t.Fatal(err)
	}
	if len(undone) != 0 {
		t.Fatalf("read %d results past a corrupt record", len(undone))
	}
}

// A process killed (or a machine crashed) after results were kept in its
// journal: the result files, written unsynced, may be gone. OpenOutbox
// files every result the journal holds undone — not the one marked done,
// not the torn tail — and removes the journal.
func TestOpenOutboxRecoversAnEndedJournal(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	kept, delivered := []byte(`{"result":"kept"}`), []byte(`{"result":"delivered"}`)
	for _, b := range [][]byte{kept, delivered} {
		if err := j.keep(resultSum(b), b); err != nil {
			t.Fatal(err)
		}
	}
	j.done(resultSum(delivered))
	// A record whose write never completed.
	if _, err := j.f.WriteString("R " + resultSum([]byte("x")) + " 100\n{\"res"); err != nil {
		t.Fatal(err)
	}
	// A torn unsynced copy of the kept result, as a crash may leave it.
	torn := filepath.Join(dir, resultName(resultSum(kept)))
	if err := os.WriteFile(torn, []byte(`{"resu`), 0o600); err != nil {
		t.Fatal(err)
	}
	// Another journal, held by a running process: left alone.
	live, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer live.close()
	// The process ends: its lock goes with its file descriptor.
	j.f.Close()

	ob, err := OpenOutbox(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := ob.Pending()
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 {
		t.Fatalf("outbox holds %v after the recovery, want the one undone result", pending)
	}
	if filepath.Base(pending[0]) != resultName(resultSum(kept)) {
		t.Fatalf("recovered %s, want the kept result", pending[0])
	}
	got, err := os.ReadFile(pending[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, kept) {
		t.Fatalf("recovered file holds %q, want %q", got, kept)
	}
	if _, err := os.Stat(j.path); !os.IsNotExist(err) {
		t.Fatalf("the recovered journal is still there: %v", err)
	}
	if _, err := os.Stat(live.path); err != nil {
		t.Fatalf("the running process's journal was touched: %v", err)
	}
}

// A closed journal files what is undone, synced, and is removed.
func TestJournalCloseFilesWhatIsUndone(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"result":"undone"}`)
	if err := j.keep(resultSum(body), body); err != nil {
		t.Fatal(err)
	}
	if err := j.close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, resultName(resultSum(body))))
	if err != nil {
		t.Fatalf("the undone result was not filed: %v", err)
	}
	if !bytes.Equal(got, body) {
		t.Fatalf("filed %q, want %q", got, body)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), journalSuffix) {
			t.Fatalf("journal %s left after close", e.Name())
		}
	}
}

// A journal with nothing undone is emptied once large.
func TestJournalCompacts(t *testing.T) {
	j, err := openJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	body := bytes.Repeat([]byte("x"), 64<<10)
	// Results of 64 KiB until the journal passes the threshold (it is
	// emptied then), at most twice the results that takes.
	for i := range 2 * journalCompactAt / len(body) {
		b := append([]byte{byte(i)}, body...)
		if err := j.keep(resultSum(b), b); err != nil {
			t.Fatal(err)
		}
		j.done(resultSum(b))
		if j.size == 0 {
			break
		}
	}
	if st, _ := j.f.Stat(); st.Size() != 0 || j.size != 0 {
		t.Fatalf("journal of %d bytes (%d recorded) with nothing undone, want emptied", st.Size(), j.size)
	}
	b := []byte(`{"after":"compaction"}`)
	if err := j.keep(resultSum(b), b); err != nil {
		t.Fatal(err)
	}
	if _, err := j.f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	undone, err := readJournal(j.f)
	if err != nil {
		t.Fatal(err)
	}
	if len(undone) != 1 || !bytes.Equal(undone[0], b) {
		t.Fatalf("after compaction the journal reads %q, want the one new result", undone)
	}
}

// FuzzCourierJournal: whatever a journal holds, reading it yields only
// results whose record was whole, with their digest.
func FuzzCourierJournal(f *testing.F) {
	if raw, err := os.ReadFile("testdata/courier.journal"); err == nil {
		f.Add(raw)
	}
	f.Add([]byte("R " + resultSum([]byte("{}")) + " 2\n{}\n"))
	f.Add([]byte("D " + resultSum([]byte("{}")) + "\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		undone, err := readJournal(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("reading from memory failed: %v", err)
		}
		for _, b := range undone {
			rec := "R " + resultSum(b) + " "
			if !bytes.Contains(raw, []byte(rec)) || !bytes.Contains(raw, b) {
				t.Fatalf("result %q is not a record of the journal", b)
			}
		}
	})
}
