"""One module per benchmark; each exposes `run(encoder, data, ...) -> TaskResult`."""
