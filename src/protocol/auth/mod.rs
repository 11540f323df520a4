//! Authentication conversations (SCRAM-SHA-1, SCRAM-SHA-256, MONGODB-X509), with no I/O.
