"""Options declared once (flag, help, bounds) and the config dataclasses every algorithm shares."""
