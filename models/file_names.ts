import { join, resolve, sep } from "node:path";

/**
 * `name`, a file name read from an index (a hub's or a folder's `model.safetensors.index.json`),
 * joined under `folder`, once it is known to stay there: a relative `/`-separated path whose
 * components are neither empty, `.` nor `..`, without a backslash, a drive letter or a control
 * character. `where` names the index in the error.
 *
 * @throws {RangeError} for a name that would leave `folder` or is not a plain file name
 */
export function fileUnder(folder: string, name: string, where: string): string {
  const why = name === ""
    ? "is empty"
    : name.startsWith("/") || /^[A-Za-z]:/.test(name)
    ? "is an absolute path"
    : name.includes("\\")
    ? "holds a backslash"
    // deno-lint-ignore no-control-regex
    : /[\u0000-\u001f\u007f]/.test(name)
    ? "holds a control character"
    : name.split("/").some((part) => part === ".." || part === "." || part === "")
    ? "has an empty, '.' or '..' component"
    : undefined;
  if (why !== undefined) {
    throw new RangeError(`${where}: file name ${JSON.stringify(name)} ${why}; refused`);
  }
  const path = join(folder, name);
  if (!resolve(path).startsWith(resolve(folder) + sep)) {
    throw new RangeError(`${where}: file name '${name}' leaves the folder ${folder}`);
  }
  return path;
}
