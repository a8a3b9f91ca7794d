package main

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// applyPathFiles are the files of the apply path: whatever they compute
// must depend on the log alone (docs/DESIGN.md, "Time and expiry").
var applyPathFiles = []string{
	"fsm.go", "pipeline.go", "rewrite.go", "scripts.go", "streams.go",
	"clock.go", "watch.go", "snapshot.go", "entry.go", "replconfig.go", "scriptstop.go", "protocol.go",
}

// clockReads are the standard library's ways of reading the wall clock.
var clockReads = map[string]bool{
	"Now": true, "Since": true, "Until": true, "Tick": true, "NewTicker": true, "After": true, "AfterFunc": true, "NewTimer": true,
}

// TestApplyPathNeverReadsTheClock fails if a file of the apply path reads
// the local clock: every node must reach the same state from the same log,
// so time there comes only from the entry's T.
func TestApplyPathNeverReadsTheClock(t *testing.T) {
	fset := token.NewFileSet()
	for _, name := range applyPathFiles {
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		timePkg := importName(f, "time")
		ast.Inspect(f, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok && (id.Name == "wallClockMS" || id.Name == "logClock") {
				t.Errorf("%s: the apply path uses the proposer's clock (%s)", fset.Position(id.Pos()), id.Name)
			}
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if id, ok := sel.X.(*ast.Ident); ok && timePkg != "" && id.Name == timePkg && clockReads[sel.Sel.Name] {
				t.Errorf("%s: the apply path reads the clock (time.%s); use the entry's T", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
}

// TestApplyPathFilesExist keeps the list above honest: a renamed file must
// not silently drop out of the clock check.
func TestApplyPathFilesExist(t *testing.T) {
	for _, name := range applyPathFiles {
		if _, err := os.Stat(name); err != nil {
			t.Errorf("apply path file %s: %v", name, err)
		}
	}
}

// importName is the name under which f imports path ("" if it does not).
func importName(f *ast.File, path string) string {
	for _, imp := range f.Imports {
		if strings.Trim(imp.Path.Value, `"`) != path {
			continue
		}
		if imp.Name != nil {
			return imp.Name.Name
		}
		return filepath.Base(path)
	}
	return ""
}

// layerOf places each file of the root package in its layer; a file may
// use names defined in its own layer or below, never above.
var layerOf = map[string]int{
	"main.go": 4, "flags.go": 4, "security.go": 4,
	"proxy.go": 3, "auth.go": 3, "client.go": 3, "commands.go": 3, "builtins.go": 3, "reads.go": 3,
	"transactions.go": 3, "blocking.go": 3, "pubsub.go": 3, "relay.go": 3, "errors.go": 3,
	"cluster.go": 3, "clustercmd.go": 3, "resp3.go": 3, "push.go": 3, "tracking.go": 3,
	"raft.go": 2, "storecheck.go": 2, "propose.go": 2, "scriptwatch.go": 2, "leadership.go": 2,
	"fsm.go": 1, "pipeline.go": 1, "rewrite.go": 1, "scripts.go": 1, "streams.go": 1,
	"clock.go": 1, "watch.go": 1, "snapshot.go": 1, "entry.go": 1, "replconfig.go": 1, "scriptstop.go": 1,
	"protocol.go": 1,
}

// TestLayersRunOneWay fails when a file uses a name (type, function,
// method, field, variable) declared in a file of a higher layer: the front
// end uses the Raft node and the proposer, which use the apply path, never
// the other way round.
func TestLayersRunOneWay(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for path, f := range pkgs["main"].Files {
		if _, ok := layerOf[filepath.Base(path)]; !ok {
			t.Errorf("%s is not placed in a layer (layerOf)", filepath.Base(path))
		}
		files = append(files, f)
	}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	if _, err := conf.Check("main", fset, files, info); err != nil {
		t.Fatal(err)
	}
	check := func(at token.Pos, obj types.Object) {
		if obj == nil || obj.Pkg() == nil || obj.Pkg().Path() != "main" || !obj.Pos().IsValid() {
			return
		}
		user := filepath.Base(fset.Position(at).Filename)
		owner := filepath.Base(fset.Position(obj.Pos()).Filename)
		if layerOf[owner] > layerOf[user] {
			t.Errorf("%s: %s uses %s from %s, a higher layer", fset.Position(at), user, obj.Name(), owner)
		}
	}
	for id, obj := range info.Uses {
		if obj.Parent() == nil || obj.Parent() == obj.Pkg().Scope() {
			check(id.Pos(), obj) // package-level names, fields and methods
		}
	}
	for sel, s := range info.Selections {
		check(sel.Sel.Pos(), s.Obj())
	}
}
