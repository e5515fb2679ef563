"""Pure logic: no I/O, no clock reads. Everything here takes bytes and returns values or raises."""
