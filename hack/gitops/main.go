// Command ferry-gitops runs the libraries GitOps tools run, on a Ferry object read as
// JSON from stdin, and prints what they make of it as JSON on stdout. The Python
// integration tests (tests/integration/test_argocd.py) call it, so they test Ferry's
// statuses and health scripts against the real code, not a look-alike.
//
//	ferry-gitops argocd-health SCRIPT < object.json   → {"status": ..., "message": ...}
//	ferry-gitops kstatus < object.json                → {"status": ..., "message": ..., "conditions": [...]}
//
// A Lua error (a script using a library Argo CD does not open, say) exits 1 with the
// error on stderr, as Argo CD would report the check as failed.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: ferry-gitops argocd-health SCRIPT | kstatus  (object JSON on stdin)")
	}
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err.Error())
	}
	var out any
	switch {
	case os.Args[1] == "argocd-health" && len(os.Args) == 3:
		out, err = argocdHealth(os.Args[2], data)
	case os.Args[1] == "kstatus" && len(os.Args) == 2:
		out, err = kstatus(data)
	default:
		fail("unknown command: " + os.Args[1])
	}
	if err != nil {
		fail(err.Error())
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fail(err.Error())
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, message)
	os.Exit(1)
}

// kstatus is sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute, as Flux's and kpt's
// health checks call it. The object is decoded the way client-go decodes one
// (integers as int64), which the generation checks rely on.
func kstatus(data []byte) (*kstatusResult, error) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	res, err := status.Compute(u)
	if err != nil {
		return nil, err
	}
	return &kstatusResult{string(res.Status), res.Message, res.Conditions}, nil
}

// kstatusResult is status.Result with the JSON names the rest of this output uses.
type kstatusResult struct {
	Status     string             `json:"status"`
	Message    string             `json:"message"`
	Conditions []status.Condition `json:"conditions"`
}

type health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// Argo CD's health statuses; anything else a script returns reads as Unknown.
var healthStatuses = map[string]bool{"Healthy": true, "Progressing": true, "Degraded": true,
	"Suspended": true, "Missing": true, "Unknown": true}

// argocdHealth runs a custom health check as Argo CD runs one from argocd-cm (its
// util/lua package): a fresh gopher-lua state without the standard libraries, then only
// package, base, table and an os that keeps time and date; a one-second deadline; the
// object as the global `obj`; the table the script returns read as {status, message}.
func argocdHealth(scriptPath string, data []byte) (*health, error) {
	script, err := os.ReadFile(scriptPath)
	if err != nil {
		return nil, err
	}
	var obj any
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, err
	}
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer L.Close()
	for name, open := range map[string]lua.LGFunction{lua.LoadLibName: lua.OpenPackage,
		lua.BaseLibName: lua.OpenBase, lua.TabLibName: lua.OpenTable, lua.OsLibName: lua.OpenOs} {
		if err := L.CallByParam(lua.P{Fn: L.NewFunction(open), Protect: true},
			lua.LString(name)); err != nil {
			return nil, err
		}
	}
	// Argo CD's os has time and date only (no exit, execute, remove, getenv ...).
	full := L.GetGlobal(lua.OsLibName).(*lua.LTable)
	safe := L.NewTable()
	for _, name := range []string{"time", "date"} {
		safe.RawSetString(name, full.RawGetString(name))
	}
	L.SetGlobal(lua.OsLibName, safe)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	L.SetContext(ctx)
	L.SetGlobal("obj", toLua(L, obj))
	if err := L.DoString(string(script)); err != nil {
		return nil, err
	}
	result, ok := L.Get(-1).(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", L.Get(-1).Type())
	}
	out := &health{Status: lua.LVAsString(result.RawGetString("status")),
		Message: lua.LVAsString(result.RawGetString("message"))}
	if !healthStatuses[out.Status] {
		out = &health{Status: "Unknown", Message: "Lua returned an invalid health status"}
	}
	return out, nil
}

// toLua converts decoded JSON as Argo CD converts an object: numbers to Lua numbers,
// arrays to sequences, objects to tables, null to nil.
func toLua(L *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case []any:
		t := L.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(toLua(L, item))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for key, item := range v {
			t.RawSetString(key, toLua(L, item))
		}
		return t
	}
	return lua.LNil
}
