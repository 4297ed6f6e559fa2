//! Integration tests of Stockade that cross crates: they start real `stockade` processes.
