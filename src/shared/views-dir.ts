import { fileURLToPath } from 'node:url';

/** The templates and static files: the web pages render from here, and so does the CLI's printed letter. */
export const viewsDir = fileURLToPath(new URL('../../views', import.meta.url));
