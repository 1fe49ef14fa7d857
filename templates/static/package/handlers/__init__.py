"""One module per channel this service receives on. The modules are yours to edit; this file is
generated."""
