"""Screens of the relsec app: lobby, meeting, room display, help, dialogs."""
