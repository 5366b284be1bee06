/** pyprime entry point: parses arguments and dispatches. */
export {};
