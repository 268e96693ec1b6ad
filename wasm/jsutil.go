//go:build js && wasm

// JavaScript interop helpers, all through safejs: Promises that run their
// work on a goroutine and recover from panics, and JSON conversion of
// arguments and results (values cross the boundary as plain JSON-shaped
// objects, so no JS reference is ever held by Go after a call returns).

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/hack-pad/safejs"
)

// yieldToJS parks the calling goroutine on a timer, so that (with every
// other goroutine idle) the Go scheduler returns control to the JavaScript
// event loop: pending messages, timers and abort signals are handled before
// the goroutine resumes. On a browser this costs about 1–4 ms.
func yieldToJS() { time.Sleep(time.Millisecond) }

// promise returns a JavaScript Promise settled by work, which runs on its own
// goroutine after the current JavaScript task (so the caller gets the
// Promise back at once). The Promise resolves with work's result converted
// by toJS, or rejects with an Error carrying the error's message; a panic in
// work is recovered and rejects with "internal error: …".
func promise(work func() (any, error)) (safejs.Value, error) {
	var executor safejs.Func
	executor, err := safejs.FuncOf(func(_ safejs.Value, args []safejs.Value) any {
		resolve, reject := args[0], args[1]
		go func() {
			defer executor.Release()
			yieldToJS()
			v, err := recovered(work)
			if err == nil {
				var jv safejs.Value
				if jv, err = toJS(v); err == nil {
					if _, err = resolve.Invoke(jv); err == nil {
						return
					}
				}
			}
			_, _ = reject.Invoke(jsError(err)) // nothing left to report a failure to
		}()
		return nil
	})
	if err != nil {
		return safejs.Undefined(), err
	}
	ctor, err := safejs.Global().Get("Promise")
	if err != nil {
		return safejs.Undefined(), err
	}
	return ctor.New(executor)
}

// recovered runs work and turns a panic into an error.
func recovered(work func() (any, error)) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			debugf("panic: %v\n%s", r, debug.Stack())
			v, err = nil, fmt.Errorf("internal error: %v", r)
		}
	}()
	return work()
}

// debugf writes to the JavaScript console when globalThis.NLI_DEBUG is truthy.
func debugf(format string, args ...any) {
	g := safejs.Global()
	if on, err := g.Get("NLI_DEBUG"); err != nil || !truthy(on) {
		return
	}
	if console, err := g.Get("console"); err == nil {
		_, _ = console.Call("log", fmt.Sprintf("nli: "+format, args...))
	}
}

func truthy(v safejs.Value) bool {
	b, err := v.Truthy()
	return err == nil && b
}

// jsError makes a JavaScript Error with err's message.
func jsError(err error) safejs.Value {
	if err == nil {
		err = errors.New("unknown error")
	}
	ctor, gerr := safejs.Global().Get("Error")
	if gerr != nil {
		v, _ := safejs.ValueOf(err.Error())
		return v
	}
	e, nerr := ctor.New(err.Error())
	if nerr != nil {
		v, _ := safejs.ValueOf(err.Error())
		return v
	}
	return e
}

// toJS converts a Go result into a JavaScript value: nil becomes undefined,
// a safejs.Value passes through, anything else goes through encoding/json
// and JSON.parse.
func toJS(v any) (safejs.Value, error) {
	switch x := v.(type) {
	case nil:
		return safejs.Undefined(), nil
	case safejs.Value:
		return x, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return safejs.Undefined(), fmt.Errorf("encode result: %w", err)
	}
	return jsonParse(string(b))
}

// jsonParse calls JSON.parse(s).
func jsonParse(s string) (safejs.Value, error) {
	j, err := safejs.Global().Get("JSON")
	if err != nil {
		return safejs.Undefined(), err
	}
	return j.Call("parse", s)
}

// jsonOf returns the JSON text of a JavaScript argument: a string is taken
// as JSON text already, anything else goes through JSON.stringify. undefined
// and null give "".
func jsonOf(v safejs.Value) (string, error) {
	switch v.Type() {
	case safejs.TypeUndefined, safejs.TypeNull:
		return "", nil
	case safejs.TypeString:
		return v.String()
	case safejs.TypeFunction, safejs.TypeSymbol:
		return "", fmt.Errorf("want an object or a JSON string, got a %s", v.Type())
	}
	j, err := safejs.Global().Get("JSON")
	if err != nil {
		return "", err
	}
	s, err := j.Call("stringify", v)
	if err != nil {
		return "", err
	}
	if s.Type() != safejs.TypeString {
		return "", errors.New("value has no JSON form")
	}
	return s.String()
}

// arg returns args[i], or undefined when the call passed fewer arguments.
func arg(args []safejs.Value, i int) safejs.Value {
	if i < len(args) {
		return args[i]
	}
	return safejs.Undefined()
}

// field returns obj[name], or undefined when obj is not an object or has no
// such property.
func field(obj safejs.Value, name string) safejs.Value {
	if obj.Type() != safejs.TypeObject && obj.Type() != safejs.TypeFunction {
		return safejs.Undefined()
	}
	v, err := obj.Get(name)
	if err != nil {
		return safejs.Undefined()
	}
	return v
}

// callback returns obj[name] when it is a function, else undefined.
func callback(obj safejs.Value, name string) (safejs.Value, bool) {
	v := field(obj, name)
	return v, v.Type() == safejs.TypeFunction
}

// bytesOf copies a Uint8Array, an ArrayBuffer or a typed-array view's bytes
// into Go.
func bytesOf(v safejs.Value) ([]byte, error) {
	g := safejs.Global()
	u8, err := g.Get("Uint8Array")
	if err != nil {
		return nil, err
	}
	if v.Type() != safejs.TypeObject {
		return nil, fmt.Errorf("want a Uint8Array or ArrayBuffer, got %s", v.Type())
	}
	if ok, _ := v.InstanceOf(u8); !ok {
		ab, _ := g.Get("ArrayBuffer")
		if isAB, _ := v.InstanceOf(ab); isAB {
			if v, err = u8.New(v); err != nil {
				return nil, err
			}
		} else if buf := field(v, "buffer"); buf.Type() == safejs.TypeObject {
			off, _ := field(v, "byteOffset").Int()
			n, _ := field(v, "byteLength").Int()
			if v, err = u8.New(buf, off, n); err != nil {
				return nil, err
			}
		} else {
			return nil, errors.New("want a Uint8Array or ArrayBuffer")
		}
	}
	n, err := v.Length()
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := safejs.CopyBytesToGo(b, v); err != nil {
		return nil, err
	}
	return b, nil
}
