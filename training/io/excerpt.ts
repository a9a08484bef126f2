// Text from a file or a user echoed into an error message is cut to a readable length: a model's
// metadata or a label file can hold megabytes, and the message is only meant to say what is wrong.

/** The text, or its first `max` characters and how many more there were. */
export function excerpt(text: string, max = 300): string {
  return text.length <= max ? text : `${text.slice(0, max)}... (${text.length - max} more characters)`;
}
