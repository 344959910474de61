// `npm pack` of web/ holds the served client, its types and its source,
// and nothing else: no tests, no Go files, no node_modules.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

const web = new URL("..", import.meta.url);

test("npm pack holds the client and nothing else", () => {
	const out = execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: web, encoding: "utf8" });
	const [info] = JSON.parse(out);
	const pkg = JSON.parse(readFileSync(new URL("package.json", web), "utf8"));
	assert.equal(info.name, pkg.name);
	assert.equal(info.version, pkg.version);
	const files = info.files.map((f) => f.path).sort();
	for (const want of ["package.json", "public/meteor.js", "public/meteor.mjs", "public/meteor.esm.js", "public/meteor.d.ts", "src/classic.js", "src/module.js", "src/parser.js"]) {
		assert.ok(files.includes(want), `${want} is not in the package: ${files.join(" ")}`);
	}
	for (const f of files) {
		assert.ok(f === "package.json" || f === "README.md" || f.startsWith("public/meteor.") || f.startsWith("src/"), `${f} should not be in the package`);
		assert.ok(!f.endsWith(".go") && !f.startsWith("test/") && !f.includes("node_modules"), `${f} should not be in the package`);
	}
	// every file the exports name is in it
	const named = [pkg.types, pkg.main, pkg.module];
	for (const v of Object.values(pkg.exports)) {
		named.push(...(typeof v === "string" ? [v] : Object.values(v)));
	}
	for (const p of named) {
		const f = p.replace(/^\.\//, "");
		assert.ok(files.includes(f), `${p} (package.json) is not in the package`);
	}
});
