"""Thin Lambda handlers: parse the event, call one service, shape the response."""
