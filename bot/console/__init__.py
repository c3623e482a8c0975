"""The merchant's console: a two-way Telegram chat (bot.console.telegram), its commands
(bot.console.commands, pure; bot.console.handler, against the running bot) and the
changes it makes, kept as overrides on top of the TOML file (bot.console.overrides)."""
