// Package bot is Chima's engine: it takes messages from chat adapters, routes
// them to plugin commands, checks policy, calls the plugin, renders what the
// plugin streams back into the right room and thread, audits every command,
// runs durable jobs and serves the Host service to plugins. It knows adapters
// and plugins only through core/chat and the plugin protocol; the CLI wires
// concrete ones in.
package bot
