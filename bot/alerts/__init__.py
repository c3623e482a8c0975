"""Alerts that need a person: repeated until acknowledged (bot.alerts.acks, bot.alerts.watch),
unanswered chats (chat SLA) and ads running out of their amount (inventory)."""
