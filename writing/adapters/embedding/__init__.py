"""The embedding model (``encoder``) and the dynamic batcher in front of it (``batcher``)."""
