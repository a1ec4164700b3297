# Image for the control-plane pieces (API, control-plane worker). Host workers run on hypervisors.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm install --no-save tsx prisma
COPY . .
RUN npx prisma generate
