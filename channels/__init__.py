"""Channels: names, wire protocol, brokers and per-connection delivery. Imports nothing from hub/."""
