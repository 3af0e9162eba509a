package httperr

import (
	"encoding/json"
	"net/http"
)

// Error is the one JSON error shape of every ztlog HTTP endpoint:
//
//	{"code":"bad_index","field":"index","message":"index \"x\" is not a decimal integer"}
//
// Code is stable and machine-readable (snake_case); Field names the request
// field, path or query parameter at fault ("" when none is); Message is for
// the person reading it and says what to do.
type Error struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Code + ": " + e.Field + ": " + e.Message
	}
	return e.Code + ": " + e.Message
}

// WriteError writes e with the given HTTP status.
func WriteError(w http.ResponseWriter, status int, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
