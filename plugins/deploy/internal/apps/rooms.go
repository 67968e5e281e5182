package apps

import (
	"fmt"
	"slices"
	"strings"
)

// CheckNotifyRooms checks that every app's notify rooms can be posted to by
// a bot running the chat adapters named in adapters: an "adapter:room" must
// name one of them, and a bare "room" needs defaultAdapter (the bot's
// default adapter, or its only one) to say which adapter it means. It
// returns a *LoadError listing every room that cannot be resolved, so that
// a room no message could reach is refused when the plugin starts.
//
// An app without notify rooms announces deployments made outside chat in
// its first allowed room (see ReportRooms), which is checked the same way.
func (s *Set) CheckNotifyRooms(adapters []string, defaultAdapter string) error {
	var problems []Problem
	for _, name := range s.names {
		a := s.apps[name]
		keyName, rooms, why := "notify_rooms", a.NotifyRooms, ""
		if len(rooms) == 0 && len(a.AllowedRooms) > 0 {
			keyName, rooms = "allowed_rooms", a.AllowedRooms[:1]
			why = " (deployments made outside chat are announced there, as the app has no notify_rooms)"
		}
		for i, raw := range rooms {
			r := ParseRoom(raw)
			key := fmt.Sprintf("%s[%d]", keyName, i)
			switch {
			case r.Adapter == "" && defaultAdapter == "":
				problems = append(problems, Problem{App: name, Key: key, Message: fmt.Sprintf(
					"%s: %q%s names no chat adapter, and the bot runs several (%s) without a default; write it adapter:room, or set bot.default_adapter in chima.yaml",
					key, raw, why, strings.Join(adapters, ", "))})
			case r.Adapter != "" && !slices.Contains(adapters, r.Adapter):
				problems = append(problems, Problem{App: name, Key: key, Message: fmt.Sprintf(
					"%s: %q%s: the bot runs no %s adapter (it runs %s)", key, raw, why, r.Adapter, strings.Join(adapters, ", "))})
			}
		}
	}
	if len(problems) > 0 {
		return &LoadError{File: s.path, Problems: problems}
	}
	return nil
}

// Resolve returns the room with its adapter filled in: defaultAdapter when
// it names none.
func (r Room) Resolve(defaultAdapter string) Room {
	if r.Adapter == "" {
		r.Adapter = defaultAdapter
	}
	return r
}

// ReportRooms returns where a deployment made outside chat (on GitHub, by
// another tool) is announced: the notify rooms, or, for an app that has
// none, its first allowed room, where its deploys are asked for.
func (a *App) ReportRooms() []Room {
	if rooms := a.NotifyTargets(); len(rooms) > 0 {
		return rooms
	}
	if len(a.AllowedRooms) > 0 {
		return []Room{ParseRoom(a.AllowedRooms[0])}
	}
	return nil
}
