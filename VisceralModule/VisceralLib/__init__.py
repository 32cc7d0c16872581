"""Helpers of the Visceral Slicer module (Qt-free): the MRML bridge and the shared test scenarios."""
