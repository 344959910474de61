package config

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors, wrapped (through *Error) by what Load returns; compare
// them with errors.Is.
var (
	// ErrUnknownParameter reports a name that is no parameter (or no unique
	// abbreviation of one on the command line).
	ErrUnknownParameter = errors.New("unknown parameter")
	// ErrAmbiguousParameter reports a command-line abbreviation that fits
	// several parameters.
	ErrAmbiguousParameter = errors.New("ambiguous parameter name")
	// ErrInvalidValue reports a value that the parameter does not accept: a
	// malformed or out-of-range number or boolean, or a word outside the
	// parameter's list.
	ErrInvalidValue = errors.New("invalid value")
	// ErrNotPerMode reports a per-mode value (-Name.mode, or a name inside a
	// [mode] section) for a parameter that has one global value only.
	ErrNotPerMode = errors.New("parameter cannot be set per mode")
	// ErrInvalidModeName reports a mode name outside [0-9a-z]+.
	ErrInvalidModeName = errors.New("invalid mode name")
	// ErrSyntax reports a command-line argument or a file line that cannot
	// be parsed.
	ErrSyntax = errors.New("syntax error")
	// ErrNotInFile reports a parameter that only the command line may set
	// (ConfigFileLocation, Help) found in the configuration file.
	ErrNotInFile = errors.New("parameter not allowed in the configuration file")
	// ErrInvalidNamespace reports a [namespace <pattern>] section whose
	// pattern is no channel pattern.
	ErrInvalidNamespace = errors.New("invalid namespace pattern")
	// ErrDuplicateNamespace reports a second [namespace <pattern>] section
	// with the same pattern.
	ErrDuplicateNamespace = errors.New("duplicate namespace")
	// ErrNotPerNamespace reports a name inside a [namespace] section for a
	// parameter that a namespace cannot set.
	ErrNotPerNamespace = errors.New("parameter cannot be set per namespace")
	// ErrConflict reports settings that are each valid but cannot be used
	// together (ReusePort 1 with Engine memory).
	ErrConflict = errors.New("conflicting settings")
	// ErrCredentialRequired reports a way to publish that would be open,
	// without a credential, beyond loopback: ControllerIP off loopback
	// without ControllerToken, or UDPPort with UDPIP off loopback.
	ErrCredentialRequired = errors.New("credential required off loopback")
)

// Error describes a setting that stops start-up: where it was found, which
// setting it was, and why it was refused. Err is one of the sentinel errors.
type Error struct {
	Where  string // "file:line", "command line" or "built-in default"
	Name   string // the name as written (with .mode when there was one)
	Value  string // the value as written, when the value was at fault
	Err    error  // the sentinel
	Detail string // more about what was expected, or ""
}

// Error formats e as "where: name: problem (detail)".
func (e *Error) Error() string {
	s := e.Where + ": "
	if e.Name != "" {
		s += e.Name + ": "
	}
	s += e.Err.Error()
	if e.Value != "" || errors.Is(e.Err, ErrInvalidValue) {
		s += " " + strconv.Quote(e.Value)
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }

// invalid is what a setter returns for a value it refuses: what it wanted.
// The caller wraps it in an *Error with ErrInvalidValue.
func invalid(format string, args ...any) error {
	return fmt.Errorf(format, args...)
}
