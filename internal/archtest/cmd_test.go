package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// maxCmdFunc is the longest a function in cmd/ may be, in lines from its
// func line to its closing brace: a command parses flags and calls the
// library; anything longer is logic that belongs in a package.
const maxCmdFunc = 80

// TestCommandsAreThin: no function in a command's non-test files is longer
// than maxCmdFunc lines.
func TestCommandsAreThin(t *testing.T) {
	files, err := filepath.Glob("../../cmd/*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no command sources found under ../../cmd")
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			start, end := fset.Position(fn.Pos()).Line, fset.Position(fn.End()).Line
			if n := end - start + 1; n > maxCmdFunc {
				t.Errorf("%s:%d: %s is %d lines (at most %d in cmd/)", strings.TrimPrefix(f, "../../"), start, fn.Name.Name, n, maxCmdFunc)
			}
		}
	}
}
