"""Message-queue transports behind one consumer-group interface (``base.Source``)."""
