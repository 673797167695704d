"""Copies every file Bubble hosts into storage the team owns; import from the modules themselves."""
