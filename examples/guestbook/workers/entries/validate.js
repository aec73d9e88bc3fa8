// What a guestbook entry must be: { "name": 1–60 characters, "message": 1–500 }.
const kLimits = { name: 60, message: 500 };

exports.problemsOf = function problemsOf(entry) {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    return ['the body must be a JSON object such as {"name": "Ada", "message": "Hello"}'];
  }
  const problems = [];
  for (const [field, max] of Object.entries(kLimits)) {
    const v = entry[field];
    if (typeof v !== 'string' || v.trim() === '') problems.push(`${field}: is required (text)`);
    else if (v.trim().length > max) problems.push(`${field}: at most ${max} characters`);
  }
  return problems;
};
