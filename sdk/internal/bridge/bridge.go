// Package bridge hands the sdk package's protocol conversions to the other
// packages of the SDK module (sdktest), without exporting them from sdk:
// the conversions stay written once, in sdk's convert.go, and stay out of
// the API plugin authors see.
//
// Package sdk registers each conversion function at init; a package that
// imports sdk gets one by its type with Func. A conversion registered
// twice, or asked for and never registered, is a bug in the SDK, and
// panics.
package bridge

import (
	"fmt"
	"reflect"
	"sync"
)

var funcs sync.Map // reflect.Type of the func → the func

// Register records each of fs, functions of distinct types.
func Register(fs ...any) {
	for _, f := range fs {
		t := reflect.TypeOf(f)
		if t == nil || t.Kind() != reflect.Func {
			panic(fmt.Sprintf("bridge: %T is not a function", f))
		}
		if _, dup := funcs.LoadOrStore(t, f); dup {
			panic(fmt.Sprintf("bridge: a %v is registered twice", t))
		}
	}
}

// Func returns the registered function of type F.
func Func[F any]() F {
	f, ok := funcs.Load(reflect.TypeFor[F]())
	if !ok {
		panic(fmt.Sprintf("bridge: no %v is registered", reflect.TypeFor[F]()))
	}
	return f.(F)
}
