/** Which service this process is; injected so the health endpoint and logs can name it. */
export const SERVICE_NAME = Symbol('SERVICE_NAME');
