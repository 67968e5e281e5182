package apps

import (
	"fmt"
	"strconv"
	"strings"
)

// Problem is one thing wrong in the apps file.
type Problem struct {
	// App is the app the problem is in, or "" for the file as a whole.
	App string
	// Key is the key the problem is about ("environments", "heroku.apps"),
	// or "" for the app as a whole.
	Key string
	// Line is the 1-based line of the key in the file (of the nearest key
	// that is in the file, for a missing one), or 0 when unknown.
	Line int
	// Message says what is wrong. It already names Key where it helps:
	// `unknown key "enironments" (did you mean "environments"?)`.
	Message string
}

// String formats the problem as "app: message".
func (p Problem) String() string {
	if p.App == "" {
		return p.Message
	}
	return p.App + ": " + p.Message
}

// LoadError lists every problem found in an apps file.
type LoadError struct {
	// File is the path the file was loaded from, as given.
	File string
	// Problems are in the order found: file order, then cross-key checks.
	Problems []Problem
}

// Error returns one line per problem, each "file:line: app: message" (no
// line when unknown).
func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		at := e.File
		if p.Line > 0 {
			at += ":" + strconv.Itoa(p.Line)
		}
		lines[i] = at + ": " + p.String()
	}
	return strings.Join(lines, "\n")
}

// UnknownAppError is a command naming an app the file doesn't have.
type UnknownAppError struct {
	// Name is the app asked for.
	Name string
	// Known are the apps the file has, sorted.
	Known []string
}

// Error returns "never heard of project-y; known apps: a, b".
func (e *UnknownAppError) Error() string {
	known := "none"
	if len(e.Known) > 0 {
		known = strings.Join(e.Known, ", ")
	}
	return fmt.Sprintf("never heard of %s; known apps: %s", e.Name, known)
}

// UnknownEnvError is a command naming an environment the app doesn't have.
type UnknownEnvError struct {
	// App is the app's name.
	App string
	// Env is the environment asked for, as given.
	Env string
	// Environments are the app's environments.
	Environments []string
}

// Error returns `project-x has no environment "prod"; its environments: live, edge`.
func (e *UnknownEnvError) Error() string {
	msg := fmt.Sprintf("%s has no environment %q", e.App, e.Env)
	if canon := CanonicalEnv(e.Env); canon != strings.ToLower(strings.TrimSpace(e.Env)) {
		msg += fmt.Sprintf(" (%s)", canon)
	}
	return msg + "; its environments: " + strings.Join(e.Environments, ", ")
}

// AmbiguousEnvError is a command that names no environment for an app with
// several and no default_environment: the bot has to ask.
type AmbiguousEnvError struct {
	// App is the app's name.
	App string
	// Environments are the app's environments to choose from.
	Environments []string
}

// Error asks: `which environment of project-x: live or edge? Say e.g. "deploy project-x to live".`
func (e *AmbiguousEnvError) Error() string {
	return fmt.Sprintf("which environment of %s: %s? Say e.g. \"deploy %s to %s\".",
		e.App, orList(e.Environments), e.App, first(e.Environments))
}

// RoomError is a deploy asked for in a room the app doesn't allow.
type RoomError struct {
	// App is the app's name.
	App string
	// Adapter and Room say where the command came from.
	Adapter, Room string
	// Allowed are the app's allowed_rooms.
	Allowed []string
}

// Error returns "project-x can't be deployed from general; allowed rooms: deployment".
func (e *RoomError) Error() string {
	return fmt.Sprintf("%s can't be deployed from %s; allowed rooms: %s",
		e.App, strings.TrimPrefix(e.Room, "#"), strings.Join(e.Allowed, ", "))
}

func orList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

func first(items []string) string {
	if len(items) == 0 {
		return ""
	}
	return items[0]
}
