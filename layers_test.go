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
	"sync"
	"testing"
)

// applyPathFiles are the files of the apply path: whatever they compute
// must depend on the log alone (docs/DESIGN.md, "Time and expiry").
var applyPathFiles = []string{
	"fsm.go", "pipeline.go", "rewrite.go", "step.go", "scripts.go", "streams.go",
	"clock.go", "watch.go", "snapshot.go", "entry.go", "replconfig.go", "scriptstop.go", "protocol.go", "rdb.go",
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
	"sync.go": 3, "info.go": 3, "monitor.go": 3,
	"raft.go": 2, "storecheck.go": 2, "propose.go": 2, "scriptwatch.go": 2, "leadership.go": 2,
	"backup.go": 2, "metrics.go": 2, "health.go": 2, "peers.go": 2,
	"fsm.go": 1, "rdb.go": 1, "pipeline.go": 1, "rewrite.go": 1, "step.go": 1, "scripts.go": 1, "streams.go": 1,
	"clock.go": 1, "watch.go": 1, "snapshot.go": 1, "entry.go": 1, "replconfig.go": 1, "scriptstop.go": 1,
	"protocol.go": 1,
}

// TestLayersRunOneWay fails when a file uses a name (type, function,
// method, field, variable) declared in a file of a higher layer: the front
// end uses the Raft node and the proposer, which use the apply path, never
// the other way round.
func TestLayersRunOneWay(t *testing.T) {
	for _, u := range fileUses(t) {
		if _, ok := layerOf[u.user]; !ok {
			t.Errorf("%s is not placed in a layer (layerOf)", u.user)
		}
		if layerOf[u.owner] > layerOf[u.user] {
			t.Errorf("%s: %s uses %s from %s, a higher layer", u.at, u.user, u.name, u.owner)
		}
	}
}

// TestLowerLayersReadTopDown fails when two files of the Raft node's layer
// or of the apply path use each other's names: below the front end, the
// files of a layer form a hierarchy too (rewrite.go plans with streams.go
// and step.go, streams.go with step.go, never back).
func TestLowerLayersReadTopDown(t *testing.T) {
	uses := map[[2]string]fileUse{}
	for _, u := range fileUses(t) {
		if u.user != u.owner && layerOf[u.user] <= 2 && layerOf[u.owner] == layerOf[u.user] {
			uses[[2]string{u.user, u.owner}] = u
		}
	}
	for pair, u := range uses {
		if back, ok := uses[[2]string{pair[1], pair[0]}]; ok && pair[0] < pair[1] {
			t.Errorf("%s and %s use each other: %s uses %s (%s), %s uses %s (%s)",
				pair[0], pair[1], u.user, u.name, u.at, back.user, back.name, back.at)
		}
	}
}

// fileUse is one use of a package-level name (or a field or method) of the
// root package in a file other than the one that declares it, or in it.
type fileUse struct {
	user, owner, name string
	at                token.Position
}

// fileUses type-checks the root package (without tests) and lists every use
// of its own names, with the file of the use and of the declaration.
func fileUses(t *testing.T) []fileUse {
	t.Helper()
	fileUsesOnce.Do(func() { fileUsesCache, fileUsesErr = readFileUses() })
	if fileUsesErr != nil {
		t.Fatal(fileUsesErr)
	}
	return fileUsesCache
}

// The package is type-checked once for every test that asks.
var (
	fileUsesOnce  sync.Once
	fileUsesCache []fileUse
	fileUsesErr   error
)

func readFileUses() ([]fileUse, error) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		return nil, err
	}
	var files []*ast.File
	for _, f := range pkgs["main"].Files {
		files = append(files, f)
	}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
	conf := types.Config{Importer: importer.ForCompiler(fset, "source", nil)}
	if _, err := conf.Check("main", fset, files, info); err != nil {
		return nil, err
	}
	var out []fileUse
	note := func(at token.Pos, obj types.Object) {
		if obj == nil || obj.Pkg() == nil || obj.Pkg().Path() != "main" || !obj.Pos().IsValid() {
			return
		}
		pos := fset.Position(at)
		out = append(out, fileUse{user: filepath.Base(pos.Filename), owner: filepath.Base(fset.Position(obj.Pos()).Filename), name: obj.Name(), at: pos})
	}
	for id, obj := range info.Uses {
		if obj.Parent() == nil || obj.Parent() == obj.Pkg().Scope() {
			note(id.Pos(), obj) // package-level names, fields and methods
		}
	}
	for sel, s := range info.Selections {
		note(sel.Sel.Pos(), s.Obj())
	}
	return out, nil
}
