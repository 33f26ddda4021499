package onion

import (
	"reflect"
	"unsafe"
)

// wipeObject zeroes, in place, the struct that x (a pointer, usually in an
// interface such as cipher.Block) points to, and reports whether it did.
// crypto/aes and crypto/cipher offer no way to erase an expanded key, and
// an AES key schedule gives the key back, so without this every old key
// generation would stay readable in memory until the garbage collector
// happened to reuse it. Only structs without pointers are touched
// (overwriting a pointer could corrupt the heap); on platforms or Go
// versions where the cipher's state holds pointers it is left alone and
// the wipe is reported as not done (TestWipeObject notices that on the
// platforms that claim HardwareAES).
func wipeObject(x any) bool {
	v := reflect.ValueOf(x)
	if !v.IsValid() || v.Kind() != reflect.Pointer || v.IsNil() {
		return false
	}
	t := v.Type().Elem()
	if !pointerFree(t) {
		return false
	}
	clear(unsafe.Slice((*byte)(v.UnsafePointer()), t.Size()))
	return true
}

func pointerFree(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return true
	case reflect.Array:
		return t.Len() == 0 || pointerFree(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !pointerFree(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}
