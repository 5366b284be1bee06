/** pyprime entry point: parses arguments and dispatches. */
console.log("placeholder");
