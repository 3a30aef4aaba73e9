package edge

// testKey is a publish key long enough for the edge.
const testKey = "test-key-0123456789abcdef"
