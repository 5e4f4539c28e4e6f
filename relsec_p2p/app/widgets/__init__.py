"""Widgets of the meeting screen: contributions, compose box, panels."""
