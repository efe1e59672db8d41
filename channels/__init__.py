"""Channels: names, wire protocol, brokers and per-connection delivery.

The reusable transport layer of the hub; it imports nothing from ``hub/``.
"""
