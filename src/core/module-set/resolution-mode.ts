/**
 * How the module set is made (docs/DESIGN.md section 4): from the script's directory, from the
 * root a package is found in, or from what is installed in the virtualenv's site-packages.
 */
export type ResolutionMode = "script" | "package" | "installed";
