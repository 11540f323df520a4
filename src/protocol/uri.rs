//! The `mongodb://` and `mongodb+srv://` connection string.
