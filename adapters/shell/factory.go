package shell

import (
	"errors"
	"os"
	"strings"
	"unicode"

	"github.com/chimaops/chima/core/chat"
)

// Config is what an adapters: entry of type shell may set:
//
//	adapters:
//	  - {name: console, type: shell, room: general, user: alice}
type Config struct {
	// Room is the room the console starts in (default "general").
	Room string `yaml:"room"`
	// User is the user id the console starts as (default $USER, else "you").
	User string `yaml:"user"`
}

// DefaultConfig is Config with its defaults: room general, user $USER or
// "you".
func DefaultConfig() Config {
	c := Config{Room: DefaultRoom, User: os.Getenv("USER")}
	if c.User == "" {
		c.User = DefaultUser
	}
	return c
}

// Check reports a blank room or a user id with spaces as a
// *chat.OptionError.
func (c Config) Check() error {
	if strings.TrimSpace(c.Room) == "" {
		return &chat.OptionError{Key: "room", Err: errors.New("must not be empty: the room the console starts in")}
	}
	if strings.TrimSpace(c.User) == "" || strings.ContainsFunc(c.User, unicode.IsSpace) {
		return &chat.OptionError{Key: "user", Err: errors.New("a user id without spaces is required")}
	}
	return nil
}

// Factory builds the console adapter of an adapters: entry of type shell.
// It reads stdin and writes stdout, with readline when s.Interactive.
func Factory(s chat.Setup) (chat.Adapter, error) {
	c := DefaultConfig()
	if err := s.Decode(&c); err != nil {
		return nil, err
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	return New(Options{Name: s.Name, Room: c.Room, User: c.User, BotName: s.BotName, Interactive: s.Interactive}), nil
}
