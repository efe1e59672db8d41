"""Fuzzing: the REST schema (schemathesis), WebSocket frames and bridge garbage (hypothesis)."""
