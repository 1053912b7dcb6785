"""Sensors per governed model."""
