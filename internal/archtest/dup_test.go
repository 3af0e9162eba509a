package archtest

import (
	"go/scanner"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// minRun is the shortest run of lines that may not stand in two non-test
// files: the same lines, or the same shape with other names, strings and
// numbers.
const minRun = 10

// line is one line of code reduced to its shape: identifiers become "i",
// literals "v"; keywords, operators and punctuation stay.
type line struct {
	shape string
	text  string // the tokens themselves, for runs repeated to the letter
	// thin is a line without logic: a lone brace or keyword, or a
	// declaration (a struct field, a composite literal's element, a flag's
	// registration) made only of names, literals and punctuation. Two
	// tables of the same shape are not repeated logic; the same lines to
	// the letter still are.
	thin bool
	no   int
}

// declarative are the tokens a line without logic is made of.
var declarative = map[string]bool{"i": true, "v": true, ".": true, ",": true, "(": true, ")": true, "{": true,
	"}": true, "[": true, "]": true, "*": true, "&": true, ":": true, ";": true, "...": true, "map": true,
	"struct": true, "interface": true, "func": true, "chan": true, "type": true}

// shapes reads a Go file into its code lines (comments, blank lines and
// the import block left out).
func shapes(t *testing.T, path string) []line {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	file := fset.AddFile(path, -1, len(src))
	var s scanner.Scanner
	s.Init(file, src, nil, 0)
	byLine := map[int][]string{}
	textByLine := map[int][]string{}
	var order []int
	inImport, depth := false, 0
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.SEMICOLON && lit == "\n" {
			continue
		}
		if tok == token.IMPORT {
			inImport = true
			continue
		}
		if inImport {
			switch tok {
			case token.LPAREN:
				depth++
			case token.RPAREN:
				depth--
			}
			if depth == 0 && (tok == token.RPAREN || tok == token.STRING) {
				inImport = false
			}
			continue
		}
		n := fset.Position(pos).Line
		var w string
		switch {
		case tok == token.IDENT:
			w = "i"
		case tok.IsLiteral():
			w = "v"
		default:
			w = tok.String()
		}
		if _, ok := byLine[n]; !ok {
			order = append(order, n)
		}
		byLine[n] = append(byLine[n], w)
		if lit == "" {
			lit = tok.String()
		}
		textByLine[n] = append(textByLine[n], lit)
	}
	sort.Ints(order)
	out := make([]line, 0, len(order))
	for _, n := range order {
		toks := byLine[n]
		words, logic := 0, false
		for _, w := range toks {
			if w == "i" || w == "v" {
				words++
			}
			logic = logic || !declarative[w]
		}
		thin := words <= 1 || len(toks) <= 3 || !logic
		out = append(out, line{shape: strings.Join(toks, " "), text: strings.Join(textByLine[n], " "), thin: thin, no: n})
	}
	return out
}

// TestNoRepeatedRuns: no run of minRun code lines (not counting thin ones
// alone) stands in two non-test files.
func TestNoRepeatedRuns(t *testing.T) {
	var files []string
	err := filepath.WalkDir("../..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	type place struct {
		file string
		at   int
	}
	seen := map[string]place{}
	reported := map[[2]string]bool{}
	for _, f := range files {
		ls := shapes(t, f)
		for i := 0; i+minRun <= len(ls); i++ {
			run := ls[i : i+minRun]
			thick, blank := 0, 0
			for _, l := range run {
				if !l.thin {
					thick++
				}
				if len(l.text) <= 1 {
					blank++
				}
			}
			var b strings.Builder
			if thick*2 >= minRun && !run[0].thin && !run[minRun-1].thin {
				for _, l := range run { // repeated logic, by shape
					b.WriteString(l.shape)
					b.WriteByte('\n')
				}
			} else if blank*2 < minRun {
				for _, l := range run { // repeated declarations, to the letter
					b.WriteString(l.text)
					b.WriteByte('\n')
				}
			} else {
				continue
			}
			key := b.String()
			here := place{strings.TrimPrefix(f, "../../"), run[0].no}
			other, ok := seen[key]
			if !ok {
				seen[key] = here
				continue
			}
			if pair := [2]string{other.file, here.file}; other.file != here.file && !reported[pair] {
				reported[pair] = true
				t.Errorf("%s:%d and %s:%d share a run of %d lines (same code or same shape): make one piece serve both",
					other.file, other.at, here.file, here.at, minRun)
			}
		}
	}
}
