"""Fault injection: real servers, the simulator's fault modes, restarts and kills."""
