package main

import (
	"github.com/chimaops/chima/core/chat"
)

// adapterTypes are the chat adapter types a config's adapters: entries may
// name in `type`. Each adapter package provides its factory; the core names
// none of them.
var adapterTypes = map[string]chat.Factory{}
